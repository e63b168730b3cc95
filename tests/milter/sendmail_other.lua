-- sendmail_other.lua — as Sendmail (no macro v), RT takes its copy while
-- another recipient, one whose address rt-milter cannot parse, is the
-- MTA's: rt-milter must not discard the message (that recipient would
-- lose it) but remove the RT recipients and accept.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS OTHER_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("sendmail")
  delivered_transaction(conn, list(param("RT_RCPTS")), list(param("OTHER_RCPTS")))
  mt.disconnect(conn)
end)
