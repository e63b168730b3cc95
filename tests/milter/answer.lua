-- answer.lua — one ordinary message to RT_RCPTS; at end of message expects
-- WANT: "accept" (RT recipients deleted) or "tempfail" (a 4xx reply code,
-- nothing deleted). The reply text is checked by the Python side in
-- rt-milter's log, for answers whose wording is RT's own noise.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS WANT
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn, rt = rt_transaction("postfix")
  send_message(conn)
  if param("WANT") == "accept" then
    eom(conn, SMFIR_ACCEPT)
    expect_deleted(conn, rt)
  else
    eom(conn, SMFIR_REPLYCODE)
    expect_kept(conn, rt)
  end
  mt.disconnect(conn)
end)
