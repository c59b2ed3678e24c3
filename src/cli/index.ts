// The command-line interface.
export { runCli } from "./main";
export { serve } from "./serve";
