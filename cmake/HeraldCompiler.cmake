# Compiler settings shared by every Herald target: warnings, sanitizers, ccache.

find_program(HERALD_CCACHE ccache)
if(HERALD_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # Paths under the source tree are hashed relative to it and the build directory is left out,
  # so a checkout in another folder (a CI clone, a second work tree) reuses what this machine
  # has compiled before instead of starting cold.
  set(herald_launcher env "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" CCACHE_NOHASHDIR=1
      "${HERALD_CCACHE}")
  set(CMAKE_C_COMPILER_LAUNCHER ${herald_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${herald_launcher})
endif()

# Warnings apply to Herald's own code only (herald_warnings is linked privately by
# every Herald target); generated protobuf code gets the compiler defaults.
add_library(herald_warnings INTERFACE)
target_compile_options(herald_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Woverloaded-virtual
  -Wimplicit-fallthrough -Wno-missing-field-initializers
  # GCC 12 reports Asio's coroutine frames (allocated by the frame type's own operator new, freed
  # by its operator delete) as mismatched once both are inlined: a known false positive.
  -Wno-mismatched-new-delete)
if(HERALD_WERROR)
  target_compile_options(herald_warnings INTERFACE -Werror)
endif()

if(HERALD_SANITIZE)
  string(REPLACE "," ";" _herald_sanitizers "${HERALD_SANITIZE}")
  foreach(_san IN LISTS _herald_sanitizers)
    if(NOT _san MATCHES "^(address|undefined|thread|leak)$")
      message(FATAL_ERROR "HERALD_SANITIZE: unknown sanitizer '${_san}'")
    endif()
  endforeach()
  add_compile_options(-fsanitize=${HERALD_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  # GCC's flow analysis reports false maybe-uninitialized warnings in instrumented code (the
  # sanitizers' checks defeat it); the plain build keeps the warning as an error.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-maybe-uninitialized)
  endif()
  add_link_options(-fsanitize=${HERALD_SANITIZE})
endif()
