# End-to-end tests of the dfrp-wallet binary (issue 5); included from the top-level
# CMakeLists.txt when DFRP_TESTS is on.
add_test(NAME wallet_cli
  COMMAND bash ${PROJECT_SOURCE_DIR}/tests/wallet/cli_test.sh $<TARGET_FILE:dfrp-wallet>)
