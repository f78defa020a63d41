# libFuzzer targets for the wallet (issue 5); included from fuzz/CMakeLists.txt when
# DFRP_FUZZ is on (clang). Seeds: fuzz/corpus/keystore, fuzz/corpus/bls_decode.
add_executable(fuzz_keystore ${CMAKE_CURRENT_LIST_DIR}/fuzz_keystore.cc)
target_link_libraries(fuzz_keystore PRIVATE dfrp_wallet)
target_link_options(fuzz_keystore PRIVATE -fsanitize=fuzzer)

add_executable(fuzz_bls_decode ${CMAKE_CURRENT_LIST_DIR}/fuzz_bls_decode.cc)
target_link_libraries(fuzz_bls_decode PRIVATE dfrp_wallet dfrp_bls)
target_link_options(fuzz_bls_decode PRIVATE -fsanitize=fuzzer)
