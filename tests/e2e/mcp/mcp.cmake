# End-to-end tests of the MCP gateway (label "e2e"): the official MCP TypeScript SDK client through
# `mandate serve` to the MCP reference servers, installed with `npm ci` from this folder's lock file.
# Included from tests/CMakeLists.txt; registered only when node, npm and the server are available.
find_program(MANDATE_MCP_NODE node)
find_program(MANDATE_MCP_NPM npm)
if(NOT MANDATE_MCP_NODE OR NOT MANDATE_MCP_NPM OR NOT TARGET mandate_mcp OR NOT TARGET mandate_server)
  message(STATUS "MCP e2e tests not registered: node, npm and the server with src/mcp are needed")
  return()
endif()
set(MANDATE_E2E_MCP_DIR ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME e2e_mcp_npm_install COMMAND ${MANDATE_E2E_MCP_DIR}/run.sh --install-only)
set_tests_properties(e2e_mcp_npm_install PROPERTIES FIXTURES_SETUP e2e_mcp_npm LABELS e2e TIMEOUT 300)
file(GLOB MANDATE_E2E_MCP_TESTS CONFIGURE_DEPENDS ${MANDATE_E2E_MCP_DIR}/*.test.js)
foreach(test_file ${MANDATE_E2E_MCP_TESTS})
  get_filename_component(test_name ${test_file} NAME_WE)
  add_test(NAME e2e_mcp_${test_name} COMMAND ${MANDATE_E2E_MCP_DIR}/run.sh --no-install ${test_file})
  set_tests_properties(e2e_mcp_${test_name} PROPERTIES
    ENVIRONMENT "MANDATE_BIN=$<TARGET_FILE:mandate>"
    FIXTURES_REQUIRED e2e_mcp_npm
    LABELS e2e
    TIMEOUT 300)
endforeach()
