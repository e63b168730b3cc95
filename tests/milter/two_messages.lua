-- two_messages.lua — two transactions on one connection: the first has no
-- RT recipient (ACCEPT at DATA), the second, from another sender, goes to
-- RT; nothing of the first may leak into the second.
-- -D: SOCKET TESTDIR QID SENDER OTHER_RCPTS QID2 SENDER2 RT_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  not_ours_transaction(conn, list(param("OTHER_RCPTS")), "DATA (first message)")
  SENDER, QID = param("SENDER2"), param("QID2")
  delivered_transaction(conn, list(param("RT_RCPTS")), {})
  mt.disconnect(conn)
end)
