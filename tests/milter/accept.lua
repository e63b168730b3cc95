-- accept.lua — RT takes every copy, as Postfix (macro v) sees it: each RT
-- recipient is removed with smfi_delrcpt, the ordinary ones are kept, the
-- message is accepted and left unchanged.
-- -D: SOCKET TESTDIR QID SENDER RT_RCPTS [OTHER_RCPTS]
dofile((TESTDIR or ".") .. "/lib.lua")
run(function()
  local conn = connect("postfix")
  delivered_transaction(conn, list(param("RT_RCPTS")), list(param("OTHER_RCPTS", "")))
  mt.disconnect(conn)
end)
