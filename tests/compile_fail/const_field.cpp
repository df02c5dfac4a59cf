// expect: an aggregate with a const or reference field cannot be decoded
#include <mproc/mproc.hpp>
struct Config { const int version; };
int main() { (void)mproc::decode<Config>({}); }
