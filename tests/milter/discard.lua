-- discard.lua — RT takes every copy and no MTA named itself in macro v
-- (Sendmail-like): with only RT recipients rt-milter answers DISCARD,
-- deleting nothing.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn, rt = rt_transaction("sendmail")
  send_message(conn)
  eom(conn, SMFIR_DISCARD)
  expect_kept(conn, rt)
  expect_message_unchanged(conn)
  mt.disconnect(conn)
end)
