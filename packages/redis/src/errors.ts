/** Thrown by a driver when the command was never handed to the network. */
export class NotSentError extends Error {}

/** Thrown by a driver when the deadline passed while a sent command had no reply yet. */
export class NoReplyError extends Error {}
