"""thalo.consumer: position-tracked category readers, and the command consumer."""

from thalo.consumer.consumer import POSITION_TYPE as POSITION_TYPE
from thalo.consumer.consumer import Consumer as Consumer
from thalo.consumer.consumer import Handler as Handler
from thalo.consumer.consumer import idle as idle

__all__ = ["POSITION_TYPE", "Consumer", "Handler", "idle"]
