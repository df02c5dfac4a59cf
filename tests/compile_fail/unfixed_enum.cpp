// expect: an enum without a fixed underlying type
#include <mproc/mproc.hpp>
enum Color { red, green };
int main() { (void)mproc::encode(green); }
