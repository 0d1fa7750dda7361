# Golden tests (included from tests/tests.cmake). Registers, with label `golden`:
#  - golden.<name>        `mandate test` on each tests/golden/<name>.polar: exit 0, "N passed, 0 failed";
#  - golden.error.<name>  `mandate validate` on each tests/golden/errors/<name>.polar: the exit status
#                         and every substring that <name>.expected lists;
#  - golden.example.<name>[.readme]  examples/github-like and gdrive-like: `mandate test` on the
#                         policy, and the transcripts in the README (tests/docs/check_docs.sh);
#  - golden.docs          every example in docs/policy-language.md (tests/docs/check_docs.sh).
# New files are picked up by glob. MANDATE_BIN is the mandate executable (a generator expression).
if(NOT DEFINED MANDATE_BIN)
  set(MANDATE_BIN $<TARGET_FILE:mandate>)
endif()
set(MANDATE_GOLDEN_DIR ${CMAKE_CURRENT_LIST_DIR})
set(MANDATE_GOLDEN_DRIVER ${MANDATE_GOLDEN_DIR}/run_golden.sh)

file(GLOB MANDATE_GOLDEN_POLICIES CONFIGURE_DEPENDS ${MANDATE_GOLDEN_DIR}/*.polar)
foreach(policy ${MANDATE_GOLDEN_POLICIES})
  get_filename_component(name ${policy} NAME_WE)
  add_test(NAME golden.${name} COMMAND bash ${MANDATE_GOLDEN_DRIVER} test ${MANDATE_BIN} ${policy})
  set_tests_properties(golden.${name} PROPERTIES LABELS golden TIMEOUT 60)
endforeach()

file(GLOB MANDATE_GOLDEN_ERRORS CONFIGURE_DEPENDS ${MANDATE_GOLDEN_DIR}/errors/*.polar)
foreach(policy ${MANDATE_GOLDEN_ERRORS})
  get_filename_component(name ${policy} NAME_WE)
  add_test(NAME golden.error.${name} COMMAND bash ${MANDATE_GOLDEN_DRIVER} validate ${MANDATE_BIN} ${policy})
  set_tests_properties(golden.error.${name} PROPERTIES LABELS golden TIMEOUT 60)
endforeach()

# The examples this suite owns: their test blocks, and the transcripts in their README.
foreach(name github-like gdrive-like)
  set(dir ${PROJECT_SOURCE_DIR}/examples/${name})
  add_test(NAME golden.example.${name} COMMAND bash ${MANDATE_GOLDEN_DRIVER} test ${MANDATE_BIN} ${dir}/policy.polar)
  add_test(NAME golden.example.${name}.readme
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/docs/check_docs.sh ${MANDATE_BIN} ${dir}/README.md)
  set_tests_properties(golden.example.${name} golden.example.${name}.readme PROPERTIES LABELS golden TIMEOUT 60)
endforeach()

add_test(NAME golden.docs
         COMMAND bash ${PROJECT_SOURCE_DIR}/tests/docs/check_docs.sh ${MANDATE_BIN}
                 ${PROJECT_SOURCE_DIR}/docs/policy-language.md)
set_tests_properties(golden.docs PROPERTIES LABELS golden TIMEOUT 120)
