-- not_ours.lua — a message without an RT recipient is none of rt-milter's
-- business: every RCPT continues and DATA already answers ACCEPT (no more
-- callbacks for this message).
-- -D: SOCKET TESTDIR QID SENDER OTHER_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, list(param("OTHER_RCPTS")))
  local err = mt.data(conn)
  if err ~= nil then fail("mt.data: " .. err) end
  expect_reply(conn, "DATA", SMFIR_ACCEPT)
  mt.disconnect(conn)
end)
