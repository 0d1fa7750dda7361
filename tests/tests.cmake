# Test registration beyond the per-module unit tests (included from tests/CMakeLists.txt):
#   unit_tests        a target that builds every unit_* binary (`make asan` builds only this)
#   cli.<group>       tests/cli/cli_test.sh runs the built `mandate` and checks exact output and exit codes
#   examples.*        the quickstart's test blocks, its README transcripts, and the walk-through
#                     behind `make run` (scripts/run-quickstart --demo)
#   golden tests      tests/golden/golden.cmake, when present (owned by the golden-tests helper)

add_custom_target(unit_tests)
get_property(mandate_test_targets DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
foreach(target ${mandate_test_targets})
  if(target MATCHES "^unit_" AND NOT target STREQUAL "unit_tests")
    add_dependencies(unit_tests ${target})
  endif()
endforeach()

foreach(group test validate check list actions query usage)
  add_test(NAME cli.${group}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/cli/cli_test.sh $<TARGET_FILE:mandate> ${group})
  set_tests_properties(cli.${group} PROPERTIES LABELS cli TIMEOUT 120)
endforeach()

# The quickstart (the other examples are covered by tests/golden/golden.cmake): its test blocks, and
# the walk-through behind `make run`, which fails when any answer differs from the expected one.
add_test(NAME examples.quickstart.policy_tests COMMAND mandate test ${PROJECT_SOURCE_DIR}/examples/quickstart/policy.polar)
add_test(NAME examples.quickstart.walkthrough
         COMMAND ${PROJECT_SOURCE_DIR}/scripts/run-quickstart --demo $<TARGET_FILE:mandate>)
set_tests_properties(examples.quickstart.policy_tests examples.quickstart.walkthrough PROPERTIES LABELS examples TIMEOUT 120)
# The transcripts in the quickstart README, checked by the docs checker of the golden suite.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/docs/check_docs.sh)
  add_test(NAME examples.quickstart.readme
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/docs/check_docs.sh $<TARGET_FILE:mandate>
                   ${PROJECT_SOURCE_DIR}/examples/quickstart/README.md)
  set_tests_properties(examples.quickstart.readme PROPERTIES LABELS examples TIMEOUT 120)
endif()

include(${CMAKE_CURRENT_LIST_DIR}/golden/golden.cmake OPTIONAL)
