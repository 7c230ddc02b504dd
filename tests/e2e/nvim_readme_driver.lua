-- Runs after a README configuration snippet in a real headless Neovim (tests/e2e/test_neovim_readme.py)
-- and reports what a user would see, as JSON in $SC_OUT:
--   SC_MODE=script      the snippet already ran as init.lua (nvim -u snippet.lua); open $SC_FILE
--   SC_MODE=spec        $SC_SPEC is a lazy.nvim spec: evaluate `return <spec>`, check its shape,
--                       load it as lazy.nvim does for `dir` + `ft`, open $SC_FILE
--   SC_MODE=spec-shape  only evaluate and check the spec (any Neovim version)
--   SC_MODE=setup       run the Lua chunk $SC_SETUP, open $SC_FILE and attach (nvim -u NONE)
-- SC_EXPECT=diagnostics waits for sleepy-coder's diagnostics (then, with SC_RESTART=1, runs
-- :SleepyCoderRestart and waits for a new client's); SC_EXPECT=message:<lua pattern> waits for a
-- vim.notify message matching it. Every vim.notify message is recorded.
local driver = dofile(assert(vim.env.SC_DRIVER, 'SC_DRIVER not set'))
local mode = vim.env.SC_MODE or 'script'
local expect = vim.env.SC_EXPECT or 'diagnostics'
local result = { mode = mode, messages = {}, version = vim.fn.execute('version'):match('NVIM v[%d%.]+') }

vim.notify = function(message, level)
  table.insert(result.messages, { message = tostring(message), level = level })
end

local _, finish = driver.result_file(result)

local function read(path)
  local f = assert(io.open(path, 'r'))
  local text = f:read('*a')
  f:close()
  return text
end

local function open_file()
  local file = assert(vim.env.SC_FILE, 'SC_FILE not set')
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  return vim.api.nvim_get_current_buf()
end

-- lazy.nvim, for a spec with `dir` and `ft`: on the first FileType of ft it adds dir to the
-- runtimepath, runs config, then fires FileType again for the buffer so the autocmds config
-- created see it.
local function load_like_lazy(spec)
  local loaded = false
  vim.api.nvim_create_autocmd('FileType', {
    pattern = spec.ft,
    nested = true,
    callback = function(event)
      if loaded then
        return
      end
      loaded = true
      vim.opt.runtimepath:append(spec.dir)
      spec.config()
      vim.api.nvim_exec_autocmds('FileType', { buffer = event.buf })
    end,
  })
end

local function matching_message(pattern)
  for _, item in ipairs(result.messages) do
    if item.message:match(pattern) then
      return item
    end
  end
  return nil
end

driver.run(result, finish, function()
  local bufnr
  if mode == 'spec' or mode == 'spec-shape' then
    local chunk, load_err = (loadstring or load)('return ' .. read(assert(vim.env.SC_SPEC, 'SC_SPEC not set')), '=README spec')
    assert(chunk, load_err)
    local spec = chunk()
    assert(type(spec) == 'table', 'the spec is not a table')
    result.spec = {
      dir = spec.dir,
      dir_is_directory = type(spec.dir) == 'string' and vim.fn.isdirectory(spec.dir) == 1,
      ft = spec.ft,
      config = type(spec.config),
    }
    if mode == 'spec-shape' then
      return
    end
    load_like_lazy(spec)
    bufnr = open_file()
  elseif mode == 'setup' then
    local chunk, load_err = (loadstring or load)(assert(vim.env.SC_SETUP, 'SC_SETUP not set'), '=setup')
    assert(chunk, load_err)
    chunk()
    bufnr = open_file()
    result.attach = require('sleepy_coder').attach(bufnr)
  else
    bufnr = open_file()
  end
  result.filetype = vim.bo[bufnr].filetype

  local sc = require('sleepy_coder')
  local function ours()
    local found = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.source == 'sleepy-coder' then
        table.insert(found, { code = d.code, source = d.source, message = d.message })
      end
    end
    return found
  end
  if expect == 'diagnostics' then
    result.attached = vim.wait(30000, function()
      return sc.client(bufnr) ~= nil
    end, 50)
    vim.wait(90000, function()
      return #ours() > 0
    end, 100)
    result.diagnostics = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      table.insert(result.diagnostics, { code = d.code, source = d.source, message = d.message })
    end
    result.commands = vim.fn.exists(':SleepyCoderRestart') == 2
    if vim.env.SC_RESTART == '1' and result.attached then
      -- :SleepyCoderRestart, as the user types it: a new server for the same buffer.
      local old = sc.client_id(bufnr)
      local before = #result.messages
      vim.cmd('SleepyCoderRestart')
      local new_client = vim.wait(30000, function()
        local id = sc.client_id(bufnr)
        return id ~= nil and id ~= old and sc.client(bufnr) ~= nil
      end, 50)
      vim.wait(90000, function()
        return #ours() > 0
      end, 100)
      local said = {}
      for i = before + 1, #result.messages do
        table.insert(said, result.messages[i].message)
      end
      result.restart = {
        old = old,
        new = sc.client_id(bufnr),
        new_client = new_client,
        clients = #(vim.lsp.get_clients and vim.lsp.get_clients({ name = 'sleepy_coder' }) or vim.lsp.get_active_clients()),
        diagnostics = #ours(),
        messages = said,
      }
    end
  else
    local pattern = assert(expect:match('^message:(.*)$'), 'SC_EXPECT is diagnostics or message:<pattern>')
    result.matched = vim.wait(10000, function()
      return matching_message(pattern) ~= nil
    end, 50)
    -- Long enough for a client that was (wrongly) started to show up.
    vim.wait(300)
    local clients = vim.lsp.get_clients and vim.lsp.get_clients({ name = 'sleepy_coder' }) or vim.lsp.get_active_clients()
    result.clients = #clients
  end
end)
