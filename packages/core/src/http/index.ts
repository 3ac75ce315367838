// HTTP helpers shared by @andromeda/express and @andromeda/koa.
export {}
