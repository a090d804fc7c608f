#include <catch2/catch.hpp>
#include "ipc/ipc.hpp"
#include <stdexcept>
static int add(int a, int b) { return a + b; }
static void boom(std::string s) { throw std::runtime_error(s); }
TEST_CASE("smoke") {
    for (auto m : {ipc::StartMethod::fork, ipc::StartMethod::spawn}) {
        ipc::Process p({.start_method = m}, add, 2, 3);
        p.start();
        p.join();
        CHECK(p.exitcode() == 5);
        ipc::Process q({.start_method = m}, boom, "hello");
        q.start();
        q.join();
        CHECK(q.exitcode() == 1);
        ipc::Process r({.start_method = m}, [](std::vector<int> v) { return (int)v.size(); }, std::vector<int>{1,2,3});
        r.start(); r.join(); CHECK(r.exitcode() == 3);
    }
}
