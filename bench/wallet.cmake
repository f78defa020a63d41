# Wallet and BLS benchmarks (issue 5); included from the top-level CMakeLists.txt when
# DFRP_BENCH is on. Run it from a Release build: <build>/bls_bench (see docs/BENCHMARKS.md).
find_package(benchmark REQUIRED)
add_executable(bls_bench ${CMAKE_CURRENT_LIST_DIR}/bls_bench.cc)
target_link_libraries(bls_bench PRIVATE dfrp_wallet dfrp_bls blst::blst PkgConfig::SODIUM
  benchmark::benchmark_main Threads::Threads)
