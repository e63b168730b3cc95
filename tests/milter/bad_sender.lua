-- bad_sender.lua — an envelope sender no MTA should pass (BAD_SENDER, e.g.
-- with an LF, sent as raw milter protocol bytes): each RT recipient is
-- refused at RCPT (nothing of the sender may reach a header RT reads),
-- other recipients are the MTA's business, and DATA lets the message go.
-- -D: SOCKET TESTDIR QID BAD_SENDER RT_RCPTS OTHER_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  mail(conn, param("BAD_SENDER"), param("QID"))
  rcpts(conn, list(param("RT_RCPTS")), SMFIR_REPLYCODE)
  rcpts(conn, list(param("OTHER_RCPTS")))
  if mt.data(conn) ~= nil then fail("mt.data") end
  expect_reply(conn, "DATA", SMFIR_ACCEPT)
  mt.disconnect(conn)
end)
