# Every third-party dependency, found once. All come from Debian 12 packages installed
# by tools/install-deps.

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json url)
# prometheus-cpp-dev ships pull and push too; Herald links the core library only
# (prometheus-cpp::core: registry, metric types, text serializer).
find_package(prometheus-cpp CONFIG REQUIRED)
# Debian's HiredisConfig.cmake defines no target; wrap the library in one.
find_path(HIREDIS_INCLUDE_DIR hiredis/hiredis.h REQUIRED)
find_library(HIREDIS_LIBRARY hiredis REQUIRED)
add_library(hiredis::hiredis UNKNOWN IMPORTED)
set_target_properties(hiredis::hiredis PROPERTIES
  IMPORTED_LOCATION "${HIREDIS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIR}")
if(HERALD_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(HERALD_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)
endif()

find_program(HERALD_PROTOC protoc REQUIRED)
find_program(HERALD_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
