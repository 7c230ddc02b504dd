-- Headless Neovim drives the sleepy-coder server through the repo's plugin and the core
-- code-action UI: open a broken file, wait for diagnostics, pick the rustc fix (vim.ui.select
-- is answered by this script), let the UI apply its edit and run its accept command, save,
-- wait for the diagnostics to clear, ask for the status. Results go to $SC_OUT as JSON.
local driver = dofile(assert(vim.env.SC_DRIVER, 'SC_DRIVER not set'))
local file = assert(vim.env.SC_FILE, 'SC_FILE not set')
local result = { steps = {} }
local _, finish = driver.result_file(result)

local function step(name, ok)
  table.insert(result.steps, name)
  if not ok then
    result.failed = name
    finish()
  end
end

driver.run(result, finish, function()
  local sc = require('sleepy_coder')
  sc.setup({ cmd = { vim.env.SC_PYTHON, '-m', 'lsp_server' }, settings = { modelEnabled = false }, commands = false })
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client_id = sc.attach(bufnr)
  step('attached', client_id ~= nil)

  step('diagnostics', vim.wait(60000, function()
    return #vim.diagnostic.get(bufnr) > 0
  end, 50))
  local diag = vim.diagnostic.get(bufnr)[1]
  result.diagnostic = { code = diag.code, source = diag.source, lnum = diag.lnum, col = diag.col }
  vim.api.nvim_win_set_cursor(0, { diag.lnum + 1, diag.col })

  local picked = driver.pick_action('rustc:', 60000)
  step('rustc action applied', picked ~= nil)
  result.picked = picked

  -- The accept command travels client -> plugin -> server; then the user saves.
  step('accept answered', vim.wait(10000, function()
    return sc.last_accepted() ~= nil
  end, 20))
  result.offer_id = sc.last_offer_id()
  result.fix_id = sc.last_accepted().fixId
  vim.cmd('write')
  step('diagnostics cleared', vim.wait(60000, function()
    return #vim.diagnostic.get(bufnr) == 0
  end, 50))

  local status = nil
  sc.status(function(e, s)
    status = e and { error = e.message } or s
  end)
  step('status', vim.wait(10000, function()
    return status ~= nil
  end, 20))
  result.status = status
end)
