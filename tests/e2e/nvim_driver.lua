-- Shared by the headless-Neovim scripts (tests/e2e/*.lua, benchmarks/*.lua): the JSON result file
-- and picking a code action the way a user does, through the core UI (vim.ui.select answered here).
-- Load with `local driver = dofile(vim.env.SC_DRIVER)`.
local M = {}

--- `save()` writes `result` to $SC_OUT (call it as often as you like, to leave partial progress);
--- `finish()` saves and quits.
function M.result_file(result)
  local path = assert(vim.env.SC_OUT, 'SC_OUT not set')
  local function save()
    local f = assert(io.open(path, 'w'))
    f:write(vim.fn.json_encode(result))
    f:close()
  end
  return save, function()
    save()
    vim.cmd('qall!')
  end
end

--- Run the script's `body`; an error in it is recorded as `result.error`. Then `finish()`.
function M.run(result, finish, body)
  local ok, err = pcall(body)
  if not ok then
    result.error = tostring(err)
  end
  finish()
end

--- Ask for code actions at the cursor until one whose title starts with `prefix` is offered, and
--- pick it (the UI then applies its edit and runs its command). `on_pick(title)` runs just before.
--- Returns the title, or nil after `timeout_ms`.
function M.pick_action(prefix, timeout_ms, on_pick)
  local picked = nil
  vim.ui.select = function(items, opts, on_choice)
    for _, item in ipairs(items) do
      local title = opts.format_item and opts.format_item(item) or tostring(item)
      if title:sub(1, #prefix) == prefix then
        picked = title
        if on_pick then
          on_pick(title)
        end
        on_choice(item)
        return
      end
    end
    on_choice(nil)
  end
  vim.wait(timeout_ms or 60000, function()
    if picked == nil then
      vim.lsp.buf.code_action()
      vim.wait(300, function()
        return picked ~= nil
      end, 10)
    end
    return picked ~= nil
  end, 50)
  return picked
end

return M
