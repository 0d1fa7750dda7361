# Integration tests: the built `mandate serve` as a child process on a loopback port, driven over
# HTTP by a small Beast client (server_harness.h). Included from tests/CMakeLists.txt.
if(TARGET mandate AND TARGET mandate_server)
  file(GLOB MANDATE_INTEGRATION_SRCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cc)
  add_executable(integration_server ${MANDATE_INTEGRATION_SRCS})
  target_link_libraries(integration_server PRIVATE Boost::json GTest::gtest GTest::gmock GTest::gtest_main
                        Threads::Threads)
  target_compile_definitions(integration_server PRIVATE MANDATE_BIN="$<TARGET_FILE:mandate>"
                             MANDATE_TESTDATA="${CMAKE_CURRENT_LIST_DIR}/testdata")
  add_dependencies(integration_server mandate)
  gtest_discover_tests(integration_server DISCOVERY_TIMEOUT 60 PROPERTIES LABELS integration TIMEOUT 300)
  # Several nodes on one PostgreSQL database (tests/integration/postgres/), on the server of the
  # postgres fixture (tests/postgres.cmake).
  file(GLOB MANDATE_INTEGRATION_PG_SRCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/postgres/*.cc)
  add_executable(integration_postgres ${MANDATE_INTEGRATION_PG_SRCS} ${CMAKE_CURRENT_LIST_DIR}/server_harness.cc)
  target_link_libraries(integration_postgres PRIVATE Boost::json PostgreSQL::PostgreSQL GTest::gtest GTest::gmock
                        GTest::gtest_main Threads::Threads)
  target_compile_definitions(integration_postgres PRIVATE MANDATE_BIN="$<TARGET_FILE:mandate>"
                             MANDATE_TESTDATA="${CMAKE_CURRENT_LIST_DIR}/testdata"
                             MANDATE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(integration_postgres mandate)
  gtest_discover_tests(integration_postgres DISCOVERY_TIMEOUT 60
                       PROPERTIES LABELS integration TIMEOUT 300 FIXTURES_REQUIRED postgres
                                  ENVIRONMENT ${MANDATE_PG_TEST_ENV})
endif()
