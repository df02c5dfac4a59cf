// expect: views .* do not own what they show
#include <string_view>
#include <mproc/mproc.hpp>
int main() { (void)mproc::decode<std::string_view>({}); }
