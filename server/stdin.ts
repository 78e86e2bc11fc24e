/** Reads standard input one line at a time (secrets for commands: never argv, never the environment). */
export function stdinLineReader(
  stream: ReadableStream<Uint8Array> = Deno.stdin.readable,
): () => Promise<string | null> {
  const lines = stream.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
  const reader = lines.getReader();
  return async () => {
    const { value, done } = await reader.read();
    return done ? null : value;
  };
}

function splitLines(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        controller.enqueue(buffer.slice(0, at).replace(/\r$/, ""));
        buffer = buffer.slice(at + 1);
      }
    },
    flush(controller) {
      if (buffer.length > 0) controller.enqueue(buffer);
    },
  });
}
