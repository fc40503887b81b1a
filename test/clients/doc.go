// Package clients tests the RAG server with clients nobody here wrote: the
// official openai npm package and LangChain.js (node/clients.test.mjs, run by
// TestNodeClients) and the chat page in a real headless Chromium
// (TestChatPageInBrowser, driven with chromedp). Each test starts the real
// server with ragserver.Run on a free port.
//
// They need Node with the packages that `make node-clients` installs
// (RAGOPS_NODE_CLIENTS_DIR) and Chromium (RAGOPS_CHROMIUM_BIN); `make test`
// provides both. Without them the tests fail: they never skip.
package clients
