-- Headless Neovim half of benchmarks/progress_latency.py: pick "Fix with sleepy-coder" from the
-- core code-action UI and time until the plugin's $/progress display runs. Each run edits and saves
-- the file first, so the model is asked afresh (results are cached per document version).
local driver = dofile(assert(vim.env.SC_DRIVER, 'SC_DRIVER not set'))
local file = assert(vim.env.SC_FILE, 'SC_FILE not set')
local runs = tonumber(vim.env.SC_RUNS or '5')
local result = { seconds = {}, titles = {} }
local uv = vim.uv or vim.loop
local _, finish = driver.result_file(result)

driver.run(result, finish, function()
  vim.opt.swapfile = false
  local sc = require('sleepy_coder')
  sc.setup({
    cmd = { vim.env.SC_PYTHON, '-m', 'lsp_server' },
    settings = { model = (vim.env.SC_MODEL ~= '' and vim.env.SC_MODEL) or nil, attempts = 1, maxNewTokens = tonumber(vim.env.SC_TOKENS or '32') },
    commands = false,
  })
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  assert(sc.attach(bufnr), 'sleepy-coder did not attach')
  -- The plugin's display chains to this handler right after showing the line: time it here.
  local shown_at = nil
  vim.lsp.handlers['$/progress'] = function(_, res)
    if shown_at == nil and type(res) == 'table' and type(res.token) == 'string'
        and res.token:find('sleepy-coder/', 1, true) == 1 and type(res.value) == 'table'
        and res.value.kind == 'begin' then
      shown_at = uv.hrtime()
      table.insert(result.titles, res.value.title)
    end
  end
  local finished = false
  vim.lsp.handlers['window/showMessage'] = function()
    finished = true -- the explain command of a fix-less answer, or any message: the resolve ended
  end
  for run = 1, runs do
    assert(vim.wait(120000, function()
      return #vim.diagnostic.get(bufnr) > 0
    end, 20), 'no diagnostics')
    local diag = vim.diagnostic.get(bufnr)[1]
    vim.api.nvim_win_set_cursor(0, { diag.lnum + 1, diag.col })
    local picked_at = nil
    local picked = driver.pick_action('Fix with sleepy-coder', 60000, function()
      shown_at, finished = nil, false
      picked_at = uv.hrtime()
    end)
    assert(picked ~= nil, 'the model action was never offered')
    assert(vim.wait(60000, function()
      return shown_at ~= nil
    end, 1), 'no progress within 60 s')
    table.insert(result.seconds, (shown_at - picked_at) / 1e9)
    vim.wait(600000, function()
      return finished
    end, 50)
    -- A new version: append a comment line and save, then wait for its diagnostics.
    vim.api.nvim_buf_set_lines(bufnr, -1, -1, false, { '// run ' .. run })
    vim.cmd('silent write')
    vim.wait(2000)
  end
end)
