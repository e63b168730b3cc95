-- hostile.lua — a message built to break a naive filter: HEADERS header
-- fields, an 8-bit header value, and a body with a bare CR, 8-bit bytes, an
-- empty line and one line of LINE bytes, sent in MTA-sized chunks. (NUL
-- bytes cannot be sent: miltertest passes the body as a C string; the unit
-- tests post NULs through Session.) rt-milter must
-- take it whole, post it byte for byte, and answer as for any message.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS HEADERS LINE
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn, rt = rt_transaction("postfix")
  if mt.data(conn) ~= nil then fail("mt.data") end
  for i = 1, tonumber(param("HEADERS")) do
    if mt.header(conn, "X-H" .. i, "v" .. i) ~= nil then fail("header " .. i) end
  end
  if mt.header(conn, "X-8bit", "caf\195\169 \255\254") ~= nil then fail("8-bit header") end
  if mt.eoh(conn) ~= nil then fail("mt.eoh") end
  local body = "bare\rcr\r\n\r\n8bit:\128\255\r\n" .. string.rep("x", tonumber(param("LINE"))) .. "\r\nlast\r\n"
  for i = 1, #body, 65535 do
    if mt.bodystring(conn, body:sub(i, i + 65534)) ~= nil then fail("body chunk " .. i) end
  end
  eom(conn, SMFIR_ACCEPT)
  expect_deleted(conn, rt)
  mt.disconnect(conn)
end)
