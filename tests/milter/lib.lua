-- lib.lua — shared helpers of rt-milter's miltertest scripts (tests/milter).
-- Owns: the -D parameters, connecting (with retries) as Postfix or as a
-- Sendmail-like MTA, one SMTP transaction (envelope, then message.eml sent
-- header by header with a CRLF body), the assertions on replies and end-of-
-- message requests, and run(), which echoes why a script failed: miltertest
-- 1.6.0 itself prints nothing for a Lua error, it only exits 1.
--
-- Parameters every script takes (miltertest -D NAME=VALUE):
--   SOCKET   libmilter socket spec of rt-milter (unix:/path, inet:PORT@HOST)
--   TESTDIR  this folder (for lib.lua and message.eml)
--   QID      the queue id sent as macro i
--   SENDER   the envelope sender as the MTA passes it, e.g. <alice@example.org>
-- and optionally:
--   CLIENT_IP    the client's address, sent as {client_addr} with MAIL
--                (default 192.0.2.10; "unspec" for none, as a unix-socket
--                client; Sendmail writes IPv6 ones "IPv6:2001:db8::25")
--   CLIENT_NAME  the client's name sent as {client_name} with MAIL (default
--                client.example.net; Sendmail sends "[addr]" for no name)
--   NO_SYMLIST   non-empty: the MTA does not offer SMFIF_SETSYMLIST, so
--                rt-milter keeps the connect stage, and the client and v
--                come with connect (CLIENT_IP then as mt.conninfo takes it)
--   AUTH         the SMTP AUTH user, sent as macro {auth_authen} with MAIL
--   TOP_HEADERS  header lines sent before message.eml's, "|"-separated,
--                e.g. "Authentication-Results: mx.example.com/QID; dmarc=pass
--                header.from=example.org" (as an earlier milter's insert)
-- Recipient lists are comma-separated raw RCPT arguments, e.g.
-- "<rt@example.com>,<bob@example.org>"; an empty string is an empty list.

CLIENT_HOST = "client.example.net"
CLIENT_ADDR = "192.0.2.10"
POSTFIX_VERSION = "Postfix 3.7.11"

local reply_names = {}
for _, n in ipairs({ "SMFIR_ACCEPT", "SMFIR_CONTINUE", "SMFIR_DISCARD", "SMFIR_REJECT",
                     "SMFIR_TEMPFAIL", "SMFIR_REPLYCODE", "SMFIR_SKIP" }) do
  if _G[n] ~= nil then reply_names[math.tointeger(_G[n])] = n end
end

local function reply_name(r)
  if r == nil then return "nothing" end
  local i = math.tointeger(r)
  return reply_names[i] or string.format("'%s' (%d)", string.char(i), i)
end

-- Stops the script with a message (run() prints it).
function fail(msg)
  error("FAIL: " .. msg, 0)
end

-- A -D parameter; without a default it must be given.
function param(name, default)
  local v = rawget(_G, name)
  if v == nil then
    if default == nil then fail("missing parameter -D " .. name) end
    return default
  end
  return v
end

-- "a, b" -> {"a", "b"}; "" -> {}
function list(text)
  local items = {}
  for item in string.gmatch(text or "", "[^,%s]+") do items[#items + 1] = item end
  return items
end

local function ok(err, what)
  if err ~= nil then fail(what .. ": " .. tostring(err)) end
end

function expect_reply(conn, what, want)
  local got = mt.getreply(conn)
  if got ~= want then
    fail(what .. ": expected " .. reply_name(want) .. ", got " .. reply_name(got))
  end
end

local conn_mta = {}  -- conn -> the mta given to connect()

-- Connects to rt-milter and sends the client's connect information.
-- mta = "postfix": macro v names Postfix (rt-milter then deletes recipients);
-- anything else sends no v, as a Sendmail-like MTA (rt-milter may discard).
-- rt-milter negotiates the connect stage away when the MTA sends the macros
-- it asks for (miltertest does): then mail() carries the client and v.
function connect(mta)
  local sock = param("SOCKET")
  local conn = mt.connect(sock, 40, 0.25)
  if conn == nil then fail("mt.connect(" .. sock .. ") failed") end
  conn_mta[conn] = mta
  -- NO_SYMLIST=1: an MTA that does not offer SMFIF_SETSYMLIST (all of
  -- SMFI_CURR_ACTS, 0x1FF, but that bit, 0x100): rt-milter keeps connect.
  -- miltertest 1.6.0 takes (conn, version, steps, actions), whatever its
  -- manual says; nil is its default.
  local no_symlist = param("NO_SYMLIST", "") ~= ""
  ok(mt.negotiate(conn, nil, nil, no_symlist and 0xFF or nil), "mt.negotiate")
  if mt.test_option(conn, SMFIP_NOCONNECT) == no_symlist then
    fail(no_symlist and "rt-milter negotiated connect away without SMFIF_SETSYMLIST"
         or "rt-milter kept the connect stage although the MTA sends the macros it asks for")
  end
  if no_symlist then
    if mta == "postfix" then
      ok(mt.macro(conn, SMFIC_CONNECT, "v", POSTFIX_VERSION, "j", "mx.example.com"), "mt.macro(connect)")
    end
    ok(mt.conninfo(conn, CLIENT_HOST, param("CLIENT_IP", CLIENT_ADDR)), "mt.conninfo")
    expect_reply(conn, "connect", SMFIR_CONTINUE)
  end
  if not mt.test_action(conn, SMFIF_DELRCPT) then fail("rt-milter did not negotiate SMFIF_DELRCPT") end
  if not mt.test_option(conn, SMFIP_HDR_LEADSPC) then fail("rt-milter did not negotiate SMFIP_HDR_LEADSPC") end
  return conn
end

-- MAIL's macros: i, {auth_authen} (AUTH), and, unless NO_SYMLIST, the
-- client as Postfix and Sendmail send it there when asked ({client_addr},
-- {client_name}; no address for CLIENT_IP=unspec) with v for "postfix".
function mail(conn, sender, qid)
  local macros = { "i", qid }
  local function add(name, value)
    macros[#macros + 1] = name
    macros[#macros + 1] = value
  end
  local auth = param("AUTH", "")
  if auth ~= "" then add("{auth_authen}", auth) end
  if param("NO_SYMLIST", "") == "" then
    local ip = param("CLIENT_IP", CLIENT_ADDR)
    if ip ~= "unspec" then add("{client_addr}", ip) end
    add("{client_name}", param("CLIENT_NAME", CLIENT_HOST))
    if conn_mta[conn] == "postfix" then add("v", POSTFIX_VERSION) end
  end
  ok(mt.macro(conn, SMFIC_MAIL, table.unpack(macros)), "mt.macro(MAIL)")
  ok(mt.mailfrom(conn, sender), "mt.mailfrom")
  expect_reply(conn, "MAIL FROM:" .. sender, SMFIR_CONTINUE)
end

-- One RCPT; want defaults to SMFIR_CONTINUE.
function rcpt(conn, addr, want)
  ok(mt.rcptto(conn, addr), "mt.rcptto(" .. addr .. ")")
  expect_reply(conn, "RCPT TO:" .. addr, want or SMFIR_CONTINUE)
end

function rcpts(conn, addrs, want)
  for _, a in ipairs(addrs) do rcpt(conn, a, want) end
end

-- Connects as mta and opens a transaction from SENDER (macro i = QID) to
-- the RT_RCPTS, each accepted; returns the connection and those recipients.
function rt_transaction(mta)
  local conn = connect(mta)
  local rt = list(param("RT_RCPTS"))
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, rt)
  return conn, rt
end

-- message.eml as headers {{name, value}, ...} (value without the one space
-- after the colon: miltertest adds it back when SMFIP_HDR_LEADSPC is on,
-- and folded lines joined with LF as an MTA passes them) and a CRLF body.
function load_message()
  local path = param("TESTDIR") .. "/message.eml"
  local f = io.open(path, "rb")
  if f == nil then fail("cannot open " .. path) end
  local text = f:read("a")
  f:close()
  local head, body = text:match("^(.-)\n\n(.*)$")
  if head == nil then fail(path .. ": no blank line after the header") end
  local headers = {}
  for line in (head .. "\n"):gmatch("(.-)\n") do
    if line:match("^[ \t]") then
      if #headers == 0 then fail(path .. ": continuation line first") end
      headers[#headers][2] = headers[#headers][2] .. "\n" .. line
    else
      local name, value = line:match("^([^:]+):(.*)$")
      if name == nil then fail(path .. ": not a header line: " .. line) end
      if value:sub(1, 1) ~= " " then
        fail(path .. ": " .. name .. ": miltertest always sends one space after the colon; the file needs it")
      end
      headers[#headers + 1] = { name, value:sub(2) }
    end
  end
  return headers, (body:gsub("\n", "\r\n"))
end

-- TOP_HEADERS as {{name, value}, ...}
function top_headers()
  local headers = {}
  for line in string.gmatch(param("TOP_HEADERS", ""), "[^|]+") do
    local name, value = line:match("^([^:]+): (.*)$")
    if name == nil then fail("TOP_HEADERS: not \"Name: value\": " .. line) end
    headers[#headers + 1] = { name, value }
  end
  return headers
end

-- DATA, the headers (TOP_HEADERS first), end of headers and the body in two
-- chunks split between a CR and its LF (rt-milter must still turn that CRLF
-- into LF).
function send_message(conn)
  local headers, body = load_message()
  local top = top_headers()
  for i = #top, 1, -1 do table.insert(headers, 1, top[i]) end
  ok(mt.data(conn), "mt.data")
  expect_reply(conn, "DATA", SMFIR_CONTINUE)
  for _, h in ipairs(headers) do
    ok(mt.header(conn, h[1], h[2]), "mt.header(" .. h[1] .. ")")
    expect_reply(conn, "header " .. h[1], SMFIR_CONTINUE)
  end
  ok(mt.eoh(conn), "mt.eoh")
  expect_reply(conn, "end of headers", SMFIR_CONTINUE)
  local cut = body:find("\r\n", 20, true)
  if cut == nil then fail("message.eml: body too short to split") end
  for _, chunk in ipairs({ body:sub(1, cut), body:sub(cut + 1) }) do
    ok(mt.bodystring(conn, chunk), "mt.bodystring")
    expect_reply(conn, "body chunk", SMFIR_CONTINUE)
  end
end

function eom(conn, want)
  ok(mt.eom(conn), "mt.eom")
  expect_reply(conn, "end of message", want)
end

-- The SMTP reply set at end of message, compared exactly. "<N>" in text
-- stands for any whole number (e.g. curl's "after 0 ms").
function expect_smtp_reply(conn, code, xcode, text)
  local wanted = code .. " " .. xcode .. " " .. text
  if not text:find("<N>", 1, true) then
    if mt.eom_check(conn, MT_SMTPREPLY, code, xcode, text) then return end
  else
    for n = 0, 100000 do
      if mt.eom_check(conn, MT_SMTPREPLY, code, xcode, (text:gsub("<N>", tostring(n)))) then return end
    end
  end
  fail("end of message: SMTP reply is not \"" .. wanted .. "\"")
end

function expect_deleted(conn, addrs)
  for _, a in ipairs(addrs) do
    if not mt.eom_check(conn, MT_RCPTDELETE, a) then fail("recipient " .. a .. " was not deleted") end
  end
end

function expect_kept(conn, addrs)
  for _, a in ipairs(addrs) do
    if mt.eom_check(conn, MT_RCPTDELETE, a) then fail("recipient " .. a .. " was deleted") end
  end
end

-- rt-milter never changes the message for the MTA: no header, body or
-- quarantine requests at end of message.
function expect_message_unchanged(conn)
  for what, op in pairs({ ["header added"] = MT_HDRADD, ["header inserted"] = MT_HDRINSERT,
                          ["header changed"] = MT_HDRCHANGE, ["body replaced"] = MT_BODYCHANGE,
                          ["quarantined"] = MT_QUARANTINE }) do
    if mt.eom_check(conn, op) then fail("end of message: " .. what) end
  end
end

-- A transaction without an RT recipient: every RCPT continues and DATA
-- already answers ACCEPT (no more callbacks for that message).
function not_ours_transaction(conn, others, label)
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, others)
  ok(mt.data(conn), "mt.data")
  expect_reply(conn, label or "DATA", SMFIR_ACCEPT)
end

-- A whole transaction that RT takes, as Postfix sees it: the RT
-- recipients are deleted, the others kept, the message accepted.
function delivered_transaction(conn, rt, others)
  mail(conn, param("SENDER"), param("QID"))
  rcpts(conn, rt)
  rcpts(conn, others)
  send_message(conn)
  eom(conn, SMFIR_ACCEPT)
  expect_deleted(conn, rt)
  expect_kept(conn, others)
  expect_message_unchanged(conn)
end

-- Runs a script's body; any failure (ours or a Lua error) is printed.
function run(body)
  local done, err = xpcall(body, function(e)
    if type(e) == "string" and e:sub(1, 6) == "FAIL: " then return e end
    return "FAIL: " .. debug.traceback(tostring(e), 2)
  end)
  if not done then
    mt.echo(err)
    error(err, 0)
  end
  mt.echo("PASS")
end
