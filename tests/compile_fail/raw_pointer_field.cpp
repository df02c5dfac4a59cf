// expect: a raw pointer cannot cross a process boundary
#include <mproc/mproc.hpp>
struct Node { int value; Node* next; };
int main() { (void)mproc::encode(Node{1, nullptr}); }
