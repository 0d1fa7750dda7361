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

# The AuthZEN interop examples: their test blocks (tests/e2e/e2e.cmake plays the interop suites on them).
foreach(example todo api-gateway search)
  add_test(NAME examples.authzen.${example}.policy_tests
           COMMAND mandate test ${PROJECT_SOURCE_DIR}/examples/authzen/${example}/policy.polar)
  set_tests_properties(examples.authzen.${example}.policy_tests PROPERTIES LABELS examples TIMEOUT 120)
endforeach()
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/docs/check_docs.sh)
  add_test(NAME examples.authzen.docs
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/docs/check_docs.sh $<TARGET_FILE:mandate> ${PROJECT_SOURCE_DIR}/docs/authzen.md)
  set_tests_properties(examples.authzen.docs PROPERTIES LABELS examples TIMEOUT 120)
endif()

# The agents example (examples/agents, docs/agents.md): its test blocks, and run.sh, which drives the
# customer-churn scenario over HTTP against a real `mandate serve` and checks every answer.
add_test(NAME examples.agents.policy_tests COMMAND mandate test ${PROJECT_SOURCE_DIR}/examples/agents/policy.polar)
add_test(NAME examples.agents.walkthrough
         COMMAND bash ${PROJECT_SOURCE_DIR}/examples/agents/run.sh $<TARGET_FILE:mandate>)
set_tests_properties(examples.agents.policy_tests examples.agents.walkthrough PROPERTIES LABELS examples TIMEOUT 120)
# The approvals example (examples/approvals, docs/approvals.md): its test blocks, and run.sh, which
# drives the payments scenario over HTTP (approve, deny, long poll) and checks every answer.
add_test(NAME examples.approvals.policy_tests COMMAND mandate test ${PROJECT_SOURCE_DIR}/examples/approvals/policy.polar)
add_test(NAME examples.approvals.walkthrough
         COMMAND bash ${PROJECT_SOURCE_DIR}/examples/approvals/run.sh $<TARGET_FILE:mandate>)
set_tests_properties(examples.approvals.policy_tests examples.approvals.walkthrough PROPERTIES LABELS examples
                     TIMEOUT 120)
