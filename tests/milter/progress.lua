-- progress.lua — RT answers slowly: rt-milter keeps the MTA waiting with
-- progress messages, so a reader that gives up after TIMEOUT seconds of
-- silence (mt.set_timeout) still gets the final ACCEPT.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS TIMEOUT
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  mt.set_timeout(tonumber(param("TIMEOUT")))
  local conn = connect("postfix")
  delivered_transaction(conn, list(param("RT_RCPTS")), {})
  mt.disconnect(conn)
end)
