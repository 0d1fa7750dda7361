# A PostgreSQL server for the tests of the PostgreSQL store and of several nodes (issue 10),
# started once per ctest run by scripts/pg-test-server as the fixture "postgres": tests that need
# it add FIXTURES_REQUIRED postgres and the environment MANDATE_PG_TEST_ENV (which points them at
# the URL file). Included from tests/CMakeLists.txt before the unit tests are registered.
#
# MANDATE_TEST_NO_POSTGRES=1 in ctest's environment skips starting it (and the tests skip); without
# it, a server that cannot start fails postgres.start and every test that needs it.
set(MANDATE_PG_TEST_DIR ${CMAKE_BINARY_DIR}/pg-test)
set(MANDATE_PG_TEST_ENV MANDATE_TEST_PG_URL_FILE=${MANDATE_PG_TEST_DIR}/url)
add_test(NAME postgres.start
         COMMAND bash -c "if [[ \"\${MANDATE_TEST_NO_POSTGRES:-}\" == 1 ]]; then echo 'skipped (MANDATE_TEST_NO_POSTGRES=1)'; exit 0; fi; \"$0\" destroy \"$1\" && \"$0\" start \"$1\""
                 ${PROJECT_SOURCE_DIR}/scripts/pg-test-server ${MANDATE_PG_TEST_DIR})
add_test(NAME postgres.stop COMMAND ${PROJECT_SOURCE_DIR}/scripts/pg-test-server destroy ${MANDATE_PG_TEST_DIR})
set_tests_properties(postgres.start PROPERTIES FIXTURES_SETUP postgres LABELS postgres TIMEOUT 120)
set_tests_properties(postgres.stop PROPERTIES FIXTURES_CLEANUP postgres LABELS postgres TIMEOUT 120)
# The unit tests of the store run the conformance suite on PostgreSQL too.
set(MANDATE_UNIT_TEST_PROPERTIES_store FIXTURES_REQUIRED postgres ENVIRONMENT ${MANDATE_PG_TEST_ENV})
