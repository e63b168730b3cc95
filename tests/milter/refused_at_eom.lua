-- refused_at_eom.lua — a message rt-milter refuses as a whole at end of
-- message with a custom reply (CODE XCODE TEXT, compared exactly); no
-- recipient is deleted.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS [OTHER_RCPTS] CODE XCODE TEXT
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn, rt = rt_transaction("postfix")
  local others = list(param("OTHER_RCPTS", ""))
  rcpts(conn, others)
  send_message(conn)
  eom(conn, SMFIR_REPLYCODE)
  expect_smtp_reply(conn, param("CODE"), param("XCODE"), param("TEXT"))
  expect_kept(conn, rt)
  expect_kept(conn, others)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
