# blst (supranational), built from its own C and assembly sources as the static library
# `blst::blst`. The sources come pinned from the npm registry (@chainsafe/blst@0.2.11 carries
# blst 0.3.10 under blst/; see package.json and package-lock.json), installed by
# `npm ci --ignore-scripts` in scripts/setup.sh. No blst source is committed to dfrp.
#
#   DFRP_BLST_DIR       another blst source tree (the folder holding src/server.c)
#   DFRP_BLST_PORTABLE  build without the ADX/MULX code paths (for binaries that must run on
#                       CPUs older than Broadwell/Zen); by default ADX is used when the build
#                       machine has it, as blst's own build.sh does.
set(DFRP_BLST_DIR "${PROJECT_SOURCE_DIR}/node_modules/@chainsafe/blst/blst"
    CACHE PATH "blst source tree (contains src/server.c and build/assembly.S)")
option(DFRP_BLST_PORTABLE "Build blst without ADX instructions" OFF)

if(NOT EXISTS "${DFRP_BLST_DIR}/src/server.c" OR NOT EXISTS "${DFRP_BLST_DIR}/build/assembly.S")
  message(FATAL_ERROR
    "blst sources not found in ${DFRP_BLST_DIR}: run scripts/setup.sh (it runs "
    "`npm ci --ignore-scripts`, which fetches the pinned @chainsafe/blst), or point "
    "-DDFRP_BLST_DIR at a blst source tree")
endif()

enable_language(ASM)
add_library(blst STATIC "${DFRP_BLST_DIR}/src/server.c" "${DFRP_BLST_DIR}/build/assembly.S")
add_library(blst::blst ALIAS blst)
target_include_directories(blst SYSTEM PUBLIC "${DFRP_BLST_DIR}/bindings")
set_target_properties(blst PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
# blst's own flags (build.sh): no builtins, no AVX transitions; optimised even in Debug so
# sanitizer test runs stay fast; its warnings are not ours to fix.
target_compile_options(blst PRIVATE -O2 -fno-builtin -w
  $<$<COMPILE_LANGUAGE:C>:-mno-avx>)
if(DFRP_BLST_PORTABLE)
  target_compile_definitions(blst PRIVATE __BLST_PORTABLE__)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND EXISTS /proc/cpuinfo)
  file(STRINGS /proc/cpuinfo _dfrp_cpu_flags REGEX "^flags" LIMIT_COUNT 1)
  if(_dfrp_cpu_flags MATCHES " adx( |$)")
    target_compile_definitions(blst PRIVATE __ADX__)
  endif()
endif()
