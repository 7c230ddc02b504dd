-- A scripted user in a real headless Neovim: the sleepy-coder plugin, the core code-action UI
-- (vim.ui.select is answered by this script) and ordinary buffer edits, on two fixture crates.
--
-- Events, in order (see tests/e2e/scripted_user.py for the rows each must leave):
--   main/E0382   accept a rustc fix
--   main/E0384   apply a second fix in the same function
--   twice/E0382  accept, then edit the fixed range and save
--   show/E0277   accept a derive in inventory.rs (cross-file), then edit it there and save
--   undo_me/E0384 accept, then undo
--   turned_down/E0382 reject it, picked from the code-action list
--   crate B main/E0382  the same fix as the first, accepted in a second crate
-- Results go to $SC_OUT as JSON.
local driver = dofile(assert(vim.env.SC_DRIVER, 'SC_DRIVER not set'))
local crate_a = assert(vim.env.SC_CRATE_A, 'SC_CRATE_A not set')
local crate_b = assert(vim.env.SC_CRATE_B, 'SC_CRATE_B not set')
local result = { steps = {}, picked = {} }
local save, finish = driver.result_file(result)

local function step(name, ok)
  table.insert(result.steps, name)
  save()
  if not ok then
    result.failed = name
    error('step failed: ' .. name, 0)
  end
end

local sc = require('sleepy_coder')

-- The lines [first, last] (0-based) of `fn <name>` in the buffer.
local function fn_lines(bufnr, name)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local first
  for i, line in ipairs(lines) do
    if line:match('^fn ' .. name .. '%(') then
      first = i - 1
    elseif first and line:match('^}') then
      return first, i - 1
    end
  end
  return nil
end

local function diagnostic_in(bufnr, name, code)
  local first, last = fn_lines(bufnr, name)
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    if d.code == code and first and d.lnum >= first and d.lnum <= last then
      return d
    end
  end
  return nil
end

local function status()
  local answer
  sc.status(function(err, s)
    answer = err and { error = err.message } or s
  end)
  vim.wait(10000, function()
    return answer ~= nil
  end, 20)
  return answer or {}
end

-- Wait until the store counts `kind` outcomes `n` times (the server's writes are in order).
local function wait_count(kind, n)
  return vim.wait(60000, function()
    local s = status()
    return type(s.store) == 'table' and s.store[kind] == n
  end, 200)
end

-- Put the cursor on the error and pick the code action whose title starts with `prefix`.
local function pick(bufnr, name, code, prefix)
  local diag
  step(name .. '/' .. code .. ' shown', vim.wait(60000, function()
    diag = diagnostic_in(bufnr, name, code)
    return diag ~= nil
  end, 50))
  vim.api.nvim_set_current_buf(bufnr)
  vim.api.nvim_win_set_cursor(0, { diag.lnum + 1, diag.col })
  local picked = driver.pick_action(prefix, 60000)
  step(name .. '/' .. code .. ' picked', picked ~= nil)
  table.insert(result.picked, picked)
  return picked
end

-- Pick the rustc fix and wait for the server's answer to its accept command.
local function accept(bufnr, name, code)
  local before = sc.last_accepted()
  -- One script is one undo step unless broken up: make each fix its own, as separate user
  -- commands would be (resetting 'undolevels' to itself is Vim's documented undo break).
  vim.cmd('let &undolevels = &undolevels')
  pick(bufnr, name, code, 'rustc:')
  step(name .. ' accepted', vim.wait(20000, function()
    local now = sc.last_accepted()
    return now ~= nil and now ~= before
  end, 20))
  return sc.last_accepted()
end

local function save_and_wait_gone(bufnr, name, code)
  vim.cmd('silent wall')
  step(name .. '/' .. code .. ' fixed', vim.wait(60000, function()
    return diagnostic_in(bufnr, name, code) == nil
  end, 50))
end

-- Replace `old` with `new` on the first line that has it, as typing would (one buffer change).
local function edit_line(bufnr, old, new)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local at = line:find(old, 1, true)
    if at then
      vim.api.nvim_buf_set_text(bufnr, i - 1, at - 1, i - 1, at - 1 + #old, { new })
      return true
    end
  end
  return false
end

driver.run(result, finish, function()
  vim.cmd('filetype on')
  vim.opt.swapfile = false -- a scripted user never needs crash recovery
  sc.setup({ cmd = { vim.env.SC_PYTHON, '-m', 'lsp_server' }, settings = { modelEnabled = false } })
  vim.cmd('edit ' .. vim.fn.fnameescape(crate_a .. '/src/main.rs'))
  local main = vim.api.nvim_get_current_buf()
  step('attached', vim.wait(20000, function()
    return sc.client(main) ~= nil
  end, 50))

  local events = {}
  -- 1. accept a rustc fix; 2. a second fix in the same function.
  events.first = accept(main, 'main', 'E0382')
  save_and_wait_gone(main, 'main', 'E0382')
  events.second = accept(main, 'main', 'E0384')
  save_and_wait_gone(main, 'main', 'E0384')

  -- 3. accept, then edit the fixed range and save.
  events.edited = accept(main, 'twice', 'E0382')
  save_and_wait_gone(main, 'twice', 'E0382')
  step('edit the fix', edit_line(main, 'a.clone()', 'a.to_owned()'))
  vim.cmd('silent wall')
  step('edit recorded', wait_count('edited', 1))

  -- 4. cross-file: the derive lands in inventory.rs; the user edits it there.
  events.derive = accept(main, 'show', 'E0277')
  save_and_wait_gone(main, 'show', 'E0277')
  local inventory = vim.fn.bufnr(crate_a .. '/src/inventory.rs')
  step('inventory.rs loaded', inventory > 0)
  step('edit the derive', edit_line(inventory, '#[derive(Debug)]', '#[derive(Debug, Clone)]'))
  vim.cmd('silent wall')
  step('cross-file edit recorded', wait_count('edited', 2))

  -- 5. accept, then undo.
  events.reverted = accept(main, 'undo_me', 'E0384')
  vim.api.nvim_set_current_buf(main)
  vim.cmd('silent undo')
  step('revert recorded', wait_count('reverted', 1))
  vim.cmd('silent wall')

  -- 6. reject, picked from the code-action list.
  result.rejected_title = pick(main, 'turned_down', 'E0382', 'Reject this fix')
  step('reject recorded', wait_count('rejected', 1))

  -- 7. the first fix again, in a second crate.
  vim.cmd('edit ' .. vim.fn.fnameescape(crate_b .. '/src/main.rs'))
  local other = vim.api.nvim_get_current_buf()
  events.second_crate = accept(other, 'main', 'E0382')
  step('all accepts recorded', wait_count('accepted', 3))
  result.events = events
  result.status = status()
end)
