-- rcpt_refused.lua — RT addresses with an invalid extension are refused at
-- RCPT (a custom reply: SMFIR_REPLYCODE) while the transaction goes on for
-- the other recipients, which RT then takes.
-- -D: SOCKET TESTDIR QID SENDER REFUSED RT_RCPTS [OTHER_RCPTS]
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  local refused, rt, others = list(param("REFUSED")), list(param("RT_RCPTS")), list(param("OTHER_RCPTS", ""))
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, refused, SMFIR_REPLYCODE)
  rcpts(conn, rt)
  rcpts(conn, others)
  send_message(conn)
  eom(conn, SMFIR_ACCEPT)
  expect_deleted(conn, rt)
  expect_kept(conn, refused)
  expect_kept(conn, others)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
