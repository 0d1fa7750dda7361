# End-to-end tests (label "e2e"): the official oso-cloud npm clients against a live `mandate serve`,
# one CTest test per tests/e2e/*.test.js, each after the e2e_npm_install fixture (npm ci from
# package-lock.json, which needs the npm registry). Registered only when node and npm are on PATH and
# the server is part of the build.
find_program(MANDATE_NODE node)
find_program(MANDATE_NPM npm)
if(NOT MANDATE_NODE OR NOT MANDATE_NPM)
  message(STATUS "e2e tests not registered: node and npm are needed")
  return()
endif()
if(NOT EXISTS ${PROJECT_SOURCE_DIR}/src/server/CMakeLists.txt OR NOT EXISTS ${PROJECT_SOURCE_DIR}/src/cli/serve.cc)
  message(STATUS "e2e tests not registered: `mandate serve` is not part of this build")
  return()
endif()

set(MANDATE_E2E_DIR ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME e2e_npm_install COMMAND ${MANDATE_E2E_DIR}/run.sh --install-only)
set_tests_properties(e2e_npm_install PROPERTIES FIXTURES_SETUP e2e_npm LABELS e2e TIMEOUT 300)

file(GLOB MANDATE_E2E_TESTS CONFIGURE_DEPENDS ${MANDATE_E2E_DIR}/*.test.js)
foreach(test_file ${MANDATE_E2E_TESTS})
  get_filename_component(test_name ${test_file} NAME_WE)
  add_test(NAME e2e_${test_name} COMMAND ${MANDATE_E2E_DIR}/run.sh --no-install ${test_file})
  set_tests_properties(e2e_${test_name} PROPERTIES
    ENVIRONMENT "MANDATE_BIN=$<TARGET_FILE:mandate>"
    FIXTURES_REQUIRED e2e_npm
    LABELS e2e
    TIMEOUT 300)
endforeach()

# The web console in a real browser (tests/e2e/ui/*.test.js): Debian's chromium, headless, driven by
# playwright-core from the same package.json. Screenshots of each page go to <build dir>/ui-artifacts.
find_program(MANDATE_CHROMIUM NAMES chromium chromium-browser)
if(MANDATE_CHROMIUM)
  file(GLOB MANDATE_E2E_UI_TESTS CONFIGURE_DEPENDS ${MANDATE_E2E_DIR}/ui/*.test.js)
  foreach(test_file ${MANDATE_E2E_UI_TESTS})
    get_filename_component(test_name ${test_file} NAME_WE)
    add_test(NAME e2e_ui_${test_name} COMMAND ${MANDATE_E2E_DIR}/run.sh --no-install ${test_file})
    set_tests_properties(e2e_ui_${test_name} PROPERTIES
      ENVIRONMENT "MANDATE_BIN=$<TARGET_FILE:mandate>;CHROMIUM=${MANDATE_CHROMIUM};MANDATE_UI_ARTIFACTS=${CMAKE_BINARY_DIR}/ui-artifacts"
      FIXTURES_REQUIRED e2e_npm
      LABELS "e2e;ui"
      TIMEOUT 300)
  endforeach()
else()
  message(STATUS "browser tests of the console not registered: chromium is not installed (scripts/install-deps)")
endif()

# The OpenID AuthZEN interop suites (../shared/conformance/authzen, or AUTHZEN_SUITE) played against
# `mandate serve` on each examples/authzen/ scenario by tests/e2e/authzen/run_authzen.js (node only,
# no npm packages).
# Without ../shared (a clone on its own), the copy of the suite in tests/e2e/authzen/suite is played.
set(MANDATE_AUTHZEN_SUITE "$ENV{AUTHZEN_SUITE}")
if(NOT MANDATE_AUTHZEN_SUITE)
  get_filename_component(MANDATE_AUTHZEN_SUITE ${PROJECT_SOURCE_DIR}/../shared/conformance/authzen ABSOLUTE)
  if(NOT EXISTS ${MANDATE_AUTHZEN_SUITE})
    set(MANDATE_AUTHZEN_SUITE ${MANDATE_E2E_DIR}/authzen/suite)
  endif()
endif()
if(EXISTS ${MANDATE_AUTHZEN_SUITE})
  add_test(NAME e2e_authzen COMMAND ${MANDATE_NODE} ${MANDATE_E2E_DIR}/authzen/run_authzen.js)
  set_tests_properties(e2e_authzen PROPERTIES
    ENVIRONMENT "MANDATE_BIN=$<TARGET_FILE:mandate>;AUTHZEN_SUITE=${MANDATE_AUTHZEN_SUITE}"
    LABELS e2e
    TIMEOUT 300)
else()
  message(STATUS "e2e_authzen not registered: no AuthZEN suite at ${MANDATE_AUTHZEN_SUITE}")
endif()
