import typer

eval_app = typer.Typer(
    help="Score narrwatch on labelled data (contracts other tools rely on).", no_args_is_help=True
)
