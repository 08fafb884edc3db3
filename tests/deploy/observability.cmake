# Checks of deploy/grafana and deploy/prometheus beyond promtool: the dashboard lint, the
# provisioning files, every alert's annotations and runbook section, and the generated dashboard
# JSON being what tools/dashboards/generate.mjs writes. Included from tests/CMakeLists.txt; every
# ctest name starts with deploy_ (`ctest -R deploy_` runs the rule tests too).
find_package(yaml-cpp CONFIG REQUIRED)
if(TARGET yaml-cpp::yaml-cpp)
  set(_herald_deploy_yaml yaml-cpp::yaml-cpp)
else()
  set(_herald_deploy_yaml yaml-cpp)
endif()

add_executable(deploy_observability_lint_test
  "${CMAKE_CURRENT_LIST_DIR}/alert_runbooks_test.cc"
  "${CMAKE_CURRENT_LIST_DIR}/dashboards_lint_test.cc")
target_link_libraries(deploy_observability_lint_test PRIVATE
  herald::testing_observability herald::common ${_herald_deploy_yaml}
  GTest::gmock GTest::gtest_main herald_warnings)
gtest_discover_tests(deploy_observability_lint_test
  TEST_PREFIX deploy_
  DISCOVERY_MODE PRE_TEST
  DISCOVERY_TIMEOUT 30
  PROPERTIES LABELS unit TIMEOUT 60)

find_program(HERALD_NODE node REQUIRED)
add_test(NAME deploy_grafana_dashboards_generated
  COMMAND "${HERALD_NODE}" "${PROJECT_SOURCE_DIR}/tools/dashboards/generate.mjs" --check)
set_tests_properties(deploy_grafana_dashboards_generated PROPERTIES LABELS unit TIMEOUT 60)
