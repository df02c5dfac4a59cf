// expect: a raw pointer cannot cross a process boundary
#include <mproc/mproc.hpp>
int value = 1;
int main() { (void)mproc::encode(&value); }
