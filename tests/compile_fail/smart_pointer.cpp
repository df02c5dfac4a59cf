// expect: smart pointers cannot cross a process boundary
#include <memory>
#include <mproc/mproc.hpp>
int main() { (void)mproc::encode(std::make_shared<int>(1)); }
