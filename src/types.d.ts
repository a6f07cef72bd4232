// Probe scripts are imported as text (Bun text imports) so that the compiled binary carries them.
declare module "*.bt" {
  const source: string;
  export default source;
}
