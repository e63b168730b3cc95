-- smtp_error.lua — RT did not take the message (tempfail), or RT or the
-- trust policy refused it (reject): end of message answers with a custom
-- SMTP reply, compared exactly, and no recipient is deleted.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS [OTHER_RCPTS] CODE XCODE TEXT
--     (TEXT may hold <N> for any number)
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  local rt, others = list(param("RT_RCPTS")), list(param("OTHER_RCPTS", ""))
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, rt)
  rcpts(conn, others)
  send_message(conn)
  eom(conn, SMFIR_REPLYCODE)
  expect_smtp_reply(conn, param("CODE"), param("XCODE"), param("TEXT"))
  expect_kept(conn, rt)
  expect_kept(conn, others)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
