// expect: a union cannot cross a process boundary
#include <mproc/mproc.hpp>
union Number { int i; float f; };
int main() { (void)mproc::encode(Number{1}); }
