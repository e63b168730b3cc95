-- sendmail_other.lua — as Sendmail (no macro v), RT takes its copy while
-- another recipient, one whose address rt-milter cannot parse, is the
-- MTA's: rt-milter must not discard the message (that recipient would
-- lose it) but remove the RT recipients and accept.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS OTHER_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn, rt = rt_transaction("sendmail")
  local others = list(param("OTHER_RCPTS"))
  rcpts(conn, others)
  send_message(conn)
  eom(conn, SMFIR_ACCEPT)
  expect_deleted(conn, rt)
  expect_kept(conn, others)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
