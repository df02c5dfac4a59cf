// expect: std::function cannot cross a process boundary
#include <functional>
#include <mproc/mproc.hpp>
int main() { (void)mproc::encode(std::function<int(int)>()); }
