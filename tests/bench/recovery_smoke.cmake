# SPDX-License-Identifier: Apache-2.0
# Fills a small journal (2,000 messages on 3 queues, a quarter acked, one in ten in a
# transaction, duplicate ids, 64 KiB segments so it spans many files) and checks that the
# recovery bench finds exactly the messages that were not acked, all restored to their queues.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${BENCH} fill --dir ${WORK_DIR} --messages 2000 --queues 3
                        --body-bytes 100 --file-size 65536 --dup-ids 1 --acked-percent 25
                        --tx-percent 10
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fill failed (${rc}): ${out}${err}")
endif()
execute_process(COMMAND ${BENCH} recover --dir ${WORK_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "recover failed (${rc}): ${out}${err}")
endif()
message(STATUS "${out}")
if(NOT out MATCHES "\"messages\":1500,\"queued\":1500,")
  message(FATAL_ERROR "expected 1500 recovered and queued messages: ${out}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
