# Helpers that give every Herald library and test the same shape.
#
#   herald_library(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
#     Static library herald_<name>, alias herald::<name>, public headers in include/.
#
#   herald_test(<name> LABEL unit|integration|e2e SOURCES ... [DEPS ...] [INCLUDES dir...]
#               [TIMEOUT s])
#     GoogleTest executable; every test case becomes a ctest test with the label.

function(herald_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(herald_${name} STATIC ${ARG_SOURCES})
  add_library(herald::${name} ALIAS herald_${name})
  target_include_directories(herald_${name} PUBLIC
    "$<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>")
  target_link_libraries(herald_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} herald_warnings)
endfunction()

function(herald_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS;INCLUDES" ${ARGN})
  if(NOT HERALD_BUILD_TESTS)
    return()
  endif()
  if(NOT ARG_LABEL MATCHES "^(unit|integration|e2e)$")
    message(FATAL_ERROR "herald_test(${name}): LABEL must be unit, integration or e2e")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main herald_warnings)
  if(ARG_INCLUDES)
    target_include_directories(${name} PRIVATE ${ARG_INCLUDES})
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 30
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
endfunction()

# Embeds text files (Lua scripts) into a C++ source as std::string_view constants.
#   herald_embed(<target> NAMESPACE ns HEADER name.h FILES a.lua b.lua)
# generates <binary dir>/embedded/<header> declaring `ns::k<CamelName>` for each file
# and links the generated source into <target>.
function(herald_embed target)
  cmake_parse_arguments(ARG "" "NAMESPACE;HEADER" "FILES" ${ARGN})
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/embedded")
  get_filename_component(stem "${ARG_HEADER}" NAME_WE)
  set(out_h "${out_dir}/${ARG_HEADER}")
  set(out_cc "${out_dir}/${stem}.cc")
  set(abs_files "")
  foreach(f IN LISTS ARG_FILES)
    list(APPEND abs_files "${CMAKE_CURRENT_SOURCE_DIR}/${f}")
  endforeach()
  add_custom_command(
    OUTPUT "${out_h}" "${out_cc}"
    COMMAND ${CMAKE_COMMAND} -DNAMESPACE=${ARG_NAMESPACE} -DHEADER=${out_h} -DSOURCE=${out_cc}
            "-DFILES=${abs_files}" -P "${PROJECT_SOURCE_DIR}/cmake/HeraldEmbed.cmake"
    DEPENDS ${abs_files} "${PROJECT_SOURCE_DIR}/cmake/HeraldEmbed.cmake"
    COMMENT "Embedding ${ARG_HEADER}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out_cc}" "${out_h}")
  target_include_directories(${target} PRIVATE "${out_dir}")
endfunction()

# Compiles .proto files (paths relative to ROOT) into a static library with protobuf and gRPC
# code; generated headers are included as <path/name.pb.h>.
#   herald_proto_library(<target> ROOT dir PROTOS a/b.proto ...)
function(herald_proto_library target)
  cmake_parse_arguments(ARG "" "ROOT" "PROTOS" ${ARGN})
  set(gen_dir "${CMAKE_CURRENT_BINARY_DIR}/${target}_gen")
  file(MAKE_DIRECTORY "${gen_dir}")
  set(gen_srcs "")
  set(all_protos "")
  foreach(proto IN LISTS ARG_PROTOS)
    list(APPEND all_protos "${ARG_ROOT}/${proto}")
  endforeach()
  foreach(proto IN LISTS ARG_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" stem "${proto}")
    set(outs
      "${gen_dir}/${stem}.pb.h" "${gen_dir}/${stem}.pb.cc"
      "${gen_dir}/${stem}.grpc.pb.h" "${gen_dir}/${stem}.grpc.pb.cc")
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${HERALD_PROTOC}
        --proto_path=${ARG_ROOT}
        --cpp_out=${gen_dir}
        --grpc_out=${gen_dir}
        --plugin=protoc-gen-grpc=${HERALD_GRPC_CPP_PLUGIN}
        ${proto}
      DEPENDS ${all_protos}
      WORKING_DIRECTORY ${ARG_ROOT}
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND gen_srcs ${outs})
  endforeach()
  add_library(${target} STATIC ${gen_srcs})
  # SYSTEM keeps warnings in generated code out of Herald's -Werror build.
  target_include_directories(${target} SYSTEM PUBLIC "$<BUILD_INTERFACE:${gen_dir}>")
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
