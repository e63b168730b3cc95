-- discard.lua — RT takes every copy and no MTA named itself in macro v
-- (Sendmail-like): with only RT recipients rt-milter answers DISCARD,
-- deleting nothing.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("sendmail")
  local rt = list(param("RT_RCPTS"))
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, rt)
  send_message(conn)
  eom(conn, SMFIR_DISCARD)
  expect_kept(conn, rt)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
