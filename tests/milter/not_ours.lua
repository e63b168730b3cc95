-- not_ours.lua — a message without an RT recipient is none of rt-milter's
-- business: every RCPT continues and DATA already answers ACCEPT (no more
-- callbacks for this message).
-- -D: SOCKET TESTDIR QID SENDER OTHER_RCPTS
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  not_ours_transaction(conn, list(param("OTHER_RCPTS")))
  mt.disconnect(conn)
end)
