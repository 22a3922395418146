# Helpers that declare Vellum's targets, one library per module folder
# (in the spirit of Abseil's absl_cc_library and LevelDB's leveldb_test).

# -Wno-restrict: GCC 12 reports false positives inside std::string concatenation at -O2+ (GCC PR 105329).
set(VELLUM_WARNINGS -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers -Wno-restrict)

# vellum_library(NAME <name> SRCS <files> [PUBLIC_DEPS <targets>] [DEPS <targets>])
# Declares library vellum_<name>; its public headers live in include/ beside it.
function(vellum_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  add_library(vellum_${ARG_NAME} ${ARG_SRCS})
  target_include_directories(vellum_${ARG_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                                PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_options(vellum_${ARG_NAME} PRIVATE ${VELLUM_WARNINGS})
  target_link_libraries(vellum_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
endfunction()

# vellum_executable(NAME <binary-name> SRCS <files> DEPS <targets>)
# Every executable lands in build/bin/.
function(vellum_executable)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${VELLUM_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

# vellum_use_jemalloc(<target>): the executable allocates with jemalloc when
# VELLUM_JEMALLOC is on (--no-as-needed: it replaces malloc without being
# referenced by name), with the options in base/src/jemalloc_conf.cc.
function(vellum_use_jemalloc target)
  if(VELLUM_JEMALLOC)
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/base/src/jemalloc_conf.cc)
    target_link_libraries(${target} PRIVATE -Wl,--no-as-needed PkgConfig::JEMALLOC -Wl,--as-needed)
  endif()
endfunction()

# vellum_test(NAME <name> SRCS <files> DEPS <targets>)
# A Catch2 v2 test binary whose cases are registered with CTest one by one.
function(vellum_test)
  if(NOT VELLUM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${VELLUM_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} Catch2::Catch2WithMain)
  target_compile_definitions(${ARG_NAME} PRIVATE
      VELLUM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
      VELLUM_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
      VELLUM_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # --warn NoTests: a CTest entry whose name matches no test case fails
  # instead of passing with "No tests ran" (a ';' in a test name splits it).
  catch_discover_tests(${ARG_NAME} TEST_PREFIX "${ARG_NAME}:" EXTRA_ARGS --warn NoTests PROPERTIES TIMEOUT 600)
endfunction()
