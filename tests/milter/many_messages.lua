-- many_messages.lua — COUNT messages without an RT recipient on one
-- connection, each MAIL and RCPT preceded by a macro packet as Postfix
-- sends them (a packet that gets no reply, then the command). Over TCP each
-- such pair waits for a delayed ACK (~40 ms) unless rt-milter's sockets
-- use TCP_NODELAY and TCP_QUICKACK; the caller times the run.
-- -D: SOCKET TESTDIR SENDER OTHER_RCPTS COUNT
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  for i = 1, tonumber(param("COUNT")) do
    mail(conn, param("SENDER"), string.format("4MNY%04d", i))
    for _, r in ipairs(list(param("OTHER_RCPTS"))) do
      local err = mt.macro(conn, SMFIC_RCPT, "{rcpt_addr}", r)
      if err ~= nil then fail("mt.macro(RCPT): " .. err) end
      rcpt(conn, r)
    end
    local err = mt.data(conn)
    if err ~= nil then fail("mt.data: " .. err) end
    expect_reply(conn, "DATA", SMFIR_ACCEPT)
  end
  mt.disconnect(conn)
end)
