# Runs EXAMPLE and compares its standard output with the file EXPECTED.
# Lines of EXPECTED may use <ANY> for a part that differs between runs (a pid).
execute_process(COMMAND ${EXAMPLE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXAMPLE} exited with ${rc}\n${out}\n${err}")
endif()
file(READ ${EXPECTED} expected)
string(REGEX REPLACE "([][+.*?^$()|\\\\])" "\\\\\\1" pattern "${expected}")
string(REPLACE "<ANY>" ".*" pattern "${pattern}")
if(NOT out MATCHES "^${pattern}$")
  message(FATAL_ERROR "output of ${EXAMPLE} differs from ${EXPECTED}\n--- got:\n${out}\n--- expected:\n${expected}")
endif()
